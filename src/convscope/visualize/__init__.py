"""Seeing inside a trained CNN (notes §3): filters, activations, neighbours, deconvnet,
activation maximisation, saliency maps, code inversion and unit dissection."""
